"""Every name the pipeline shares: connection ids, MQTT topics, Kafka topics, HDFS paths, tables."""

# Airflow connection ids (defined as AIRFLOW_CONN_* in config/local.env or by the deployment)
MQTT_CONN_ID = "mqtt_default"
KAFKA_CONN_ID = "kafka_default"
WEBHDFS_CONN_ID = "webhdfs_default"
HDFS_CONN_ID = "hdfs_default"  # the NameNode's RPC address: the Spark job's Hadoop filesystem
SPARK_CONN_ID = "spark_default"
CASSANDRA_CONN_ID = "cassandra_default"
MONGO_CONN_ID = "mongo_default"

# MQTT: one topic per recording, QoS 1, a durable session for the capture client
MQTT_TOPIC_PREFIX = "gait/readings"
MQTT_TOPIC_FILTER = f"{MQTT_TOPIC_PREFIX}/+"
MQTT_QOS = 1
MQTT_CAPTURE_CLIENT_ID = "parkinson-gait-capture"

# Kafka
KAFKA_TOPIC = "gait.readings"
KAFKA_PARTITIONS = 3

# HDFS
HDFS_RAW_DIR = "/data/parkinson/raw"
HDFS_DEAD_LETTER_DIR = "/data/parkinson/dead_letter"
HDFS_MANIFEST_DIR = "/data/parkinson/manifests"
HDFS_MODEL_DIR = "/models/parkinson_knn"
HDFS_BASE_DIRS = (HDFS_RAW_DIR, HDFS_DEAD_LETTER_DIR, HDFS_MANIFEST_DIR, HDFS_MODEL_DIR)

# Cassandra
CASSANDRA_KEYSPACE = "parkinson"
# Every read and write of the pipeline (Spark job, training, predictions): a majority of the data centre's
# replicas, so one node of three may be down; on one node (one replica) the same as ONE.
CASSANDRA_CONSISTENCY = "LOCAL_QUORUM"
WINDOW_TABLE = "window_means"  # the mission's table: 18 channel means per window
FEATURE_TABLE = "window_features"  # gait features per window (include/features.py), same Spark pass
PREDICTION_TABLE = "predictions"  # champion's per-recording predictions of the latest batch

# MongoDB
MONGO_DB = "parkinson"
METRICS_COLLECTION = "model_metrics"  # the registry: one document per training run
CHAMPION_COLLECTION = "model_champion"
CHAMPION_ID = "parkinson_knn"


def mqtt_topic(recording_id: str) -> str:
    return f"{MQTT_TOPIC_PREFIX}/{recording_id}"
