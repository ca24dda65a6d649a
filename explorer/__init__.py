"""Latent-space operations behind the app, in plain Python (testable without Gradio)."""
