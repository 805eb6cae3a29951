import sys

from tutorials import main

sys.exit(main())
