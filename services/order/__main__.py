"""`python -m services.order`: run the order service process."""

from services.order.app import create_app
from shared.service import serve

if __name__ == "__main__":
    app = create_app()
    serve(app, app.state.runtime.settings)
