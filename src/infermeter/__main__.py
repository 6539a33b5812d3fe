from infermeter.cli import main

main()
