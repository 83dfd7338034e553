// Runs once, when the mongo-data volume is empty (the image's /docker-entrypoint-initdb.d hook), as root.
// Same objects as `scripts/services.py up` creates locally: the metrics collection and its two indexes.
// Database and collection names: include/names.py MONGO_DB / METRICS_COLLECTION (checked by
// tests/unit/test_compose.py).
const dbName = "parkinson";
const collectionName = "model_metrics";

const target = db.getSiblingDB(dbName);
if (!target.getCollectionNames().includes(collectionName)) {
  target.createCollection(collectionName);
}
target[collectionName].createIndex({ trained_at: -1 }, { name: "trained_at_desc" });
target[collectionName].createIndex({ dag_id: 1, trained_at: -1 }, { name: "dag_id_trained_at" });
print(`initialised ${dbName}.${collectionName}`);
