"""The infrastructure assistant: a prompt in, a config file out.

Offline by default (intent matching, parameter extraction, templates that pass the real
validators in the tests); optionally an OpenAI-compatible model, with the offline answer as
the fallback whenever the model cannot give a usable one.
"""
