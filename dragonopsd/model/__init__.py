"""The entities every layer speaks: inventory, monitors, samples and principals as msgspec Structs.

Nothing here touches I/O; services, stores and the API all build on these shapes.
"""
