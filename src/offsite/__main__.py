from offsite.launch import main

main()
