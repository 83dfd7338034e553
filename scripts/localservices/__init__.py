"""The project's local services: real Mosquitto, Kafka, HDFS, Cassandra, FerretDB and the Spark runtime."""
