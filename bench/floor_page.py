"""The floor for the app's first pictures: a Gradio page that holds only the app's opening gallery and current input
(the same 40 inline thumbnails and image), nothing else. bench/browser_latency.py times it next to the app."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr  # noqa: E402

from ui.inputs import opening_input  # noqa: E402

items, image = opening_input("mnist")
with gr.Blocks() as demo:
    gr.Gallery(items, elem_id="gallery", columns=8, height=230)
    gr.Image(image, elem_id="current", height=150)

demo.launch(server_name="127.0.0.1", server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7861")))
