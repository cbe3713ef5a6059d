from textrnn.cli import main

main()
