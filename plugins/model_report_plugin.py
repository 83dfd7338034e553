"""Airflow plugin: the model report page (metrics history, champion, plots) inside Airflow's own api-server,
with a "Model report" entry in the UI's Browse menu. No second web server."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from gait_airflow.report_app import URL_PREFIX, app


class ModelReportPlugin(AirflowPlugin):
    name = "parkinson_model_report"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Model report"}]
    external_views = [
        {
            "name": "Model report",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "model-report",
            "category": "browse",
        }
    ]
