"""Host file events carried into a container: `watchreload forward` on the host, `watchreload
receive` in the container, and the backend that takes them (ForwardedReloader).

protocol.py is the stream (pure), paths.py what a forwarded path may name, sockets.py where the
two sides meet, freshstat.py a stat() that no FUSE cache answers, listener.py the receiving
socket, reloader.py the backend, sender.py the host side, receiver.py the relay and commands.py
the two click commands.
"""
