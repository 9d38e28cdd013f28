"""How far to trust this machine's figures: ``calibrate``, the leanest baseline client, and
the ``bench`` commands that measure the harness's own parts side by side."""
