"""`python -m services.catalog`: run the catalog service process."""

from services.catalog.app import create_app
from shared.service import serve

if __name__ == "__main__":
    app = create_app()
    serve(app, app.state.runtime.settings)
