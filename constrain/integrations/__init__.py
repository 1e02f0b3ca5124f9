"""Adapters that plug constrain's matchers into other libraries' generation loops."""
