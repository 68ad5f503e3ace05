"""`python -m services.gateway`: run the gateway process."""

from services.gateway.app import create_app
from shared.service import serve

if __name__ == "__main__":
    app = create_app()
    serve(app, app.state.settings)
