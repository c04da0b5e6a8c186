"""Several cores of one deployment: who is alive, who owns which monitor, who runs singletons.

Every ``dragonopsd serve`` with a ``[redis] url`` is a core: it heartbeats in Redis
(membership.py), owns the monitors that rendezvous hashing gives it over the live cores
(rendezvous.py), and runs each singleton job only while it holds that job's lease (lease.py).
``Core`` (core.py) is what the rest of the daemon is handed. Without Redis there is no core
object at all and the daemon is the whole deployment, as before.
"""
