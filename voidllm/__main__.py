import sys

from voidllm.entry import main

sys.exit(main())
