from gnomon.cli import main

main()
