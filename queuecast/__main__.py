from queuecast.cli import main

main()
