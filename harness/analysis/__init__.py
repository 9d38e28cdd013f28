"""What the records say: metrics and their errors, accuracy against the mock's truth,
disconnect behaviour, two runs compared, and the gate's objectives judged."""
