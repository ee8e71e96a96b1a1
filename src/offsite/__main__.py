from offsite.cli import main

main()
