from labbench.cli import main

main()
