"""A FastAPI app. uvicorn's --log-config sends its records and the app's to PostgreSQL."""

import logging
import os

from fastapi import FastAPI

log = logging.getLogger("api")
app = FastAPI()


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    log.info("item %s read", item_id, extra={"item_id": item_id})
    return {"item_id": item_id, "pid": os.getpid()}
