"""`python -m services.fulfilment`: run the fulfilment service process."""

from services.fulfilment.app import create_app
from shared.service import serve

if __name__ == "__main__":
    app = create_app()
    serve(app, app.state.runtime.settings)
