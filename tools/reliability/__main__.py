from tools.reliability.matrix import main

raise SystemExit(main())
