from blo_exchange.cli.main import main

main()
