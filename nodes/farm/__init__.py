"""The farm: shots rendered by many ComfyUI servers through a Celery queue (Redis broker), each shot
billed once by the shared job ledger (nodes/engines/luma, DIRECTOR_LEDGER_URL)."""
