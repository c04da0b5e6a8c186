"""Server resource sampling: simulated servers, this host (/proc), and agent pushes."""
