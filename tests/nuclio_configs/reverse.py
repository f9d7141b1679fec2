# A one-file function with its configuration inline, as Nuclio reads it from a source file
# deployed alone (`nuctl deploy reverser --path reverse.py`).
#
# @nuclio.configure
#
# function.yaml:
#   metadata:
#     name: reverser
#   spec:
#     runtime: python
#     handler: reverse:reverse
#     env:
#     - name: SUFFIX
#       value: "!"
#     build:
#       commands:
#       - pip install tinycrypt
#

import os


def reverse(context, event):
    return event.body.decode()[::-1] + os.environ["SUFFIX"]
