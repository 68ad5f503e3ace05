"""`python -m services.identity`: run the identity service process."""

from services.identity.app import create_app
from shared.service import serve

if __name__ == "__main__":
    app = create_app()
    serve(app, app.state.runtime.settings)
