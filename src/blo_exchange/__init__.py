"""blo-exchange: a secure inter-agency alert broker for Border Liaison Offices."""

__version__ = "0.1.0"
