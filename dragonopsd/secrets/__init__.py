"""Secrets at rest: the key ring that seals values (crypto) and the service that keeps them (vault).

``crypto`` sits at the bottom of the layers, since stores seal channel configs with it;
``vault`` is a service above the store.
"""
