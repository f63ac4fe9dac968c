from embudo.cli import main

main()
