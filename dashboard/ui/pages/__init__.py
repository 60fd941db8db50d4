"""The dashboard's pages, each drawn from named queries through `ui.shared`."""
