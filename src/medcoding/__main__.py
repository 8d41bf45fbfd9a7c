from medcoding.cli import main

raise SystemExit(main())
