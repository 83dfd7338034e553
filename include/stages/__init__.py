"""The pipeline's stages, one module per concern, as plain Python: each takes the services it talks to
(include/stages/services.py) and the batch it works on, so it runs the same under Airflow
(plugins/gait_airflow builds the services from connections), in a benchmark or in a test."""
