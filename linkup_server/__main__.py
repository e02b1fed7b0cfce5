from linkup_server.cli import main

main()
