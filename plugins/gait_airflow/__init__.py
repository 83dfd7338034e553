"""Airflow glue for the gait pipeline: the MQTT hook and sensor (no official MQTT provider) and the stage
callables that connect provider hooks to the plain-Python domain code in include/."""
