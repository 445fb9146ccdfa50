"""Edit this message and save: watchreload restarts app.py, which serves the new one."""

MESSAGE = "Hello from the watchreload example. Edit examples/greeting.py and reload this page."
