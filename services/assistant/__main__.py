"""`python -m services.assistant`: run the assistant service process."""

from services.assistant.app import create_app
from shared.service import serve

if __name__ == "__main__":
    app = create_app()
    serve(app, app.state.runtime.settings)
