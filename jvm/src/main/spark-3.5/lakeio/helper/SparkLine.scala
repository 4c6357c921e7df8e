package lakeio.helper

/** The one thing the helper's sources name differently per Spark line: the session class whose
  * internals (session state, file indexes, relations) the helper uses. Spark 3.5: `sql.SparkSession`.
  * Build.gradle compiles `jvm/src/main/spark-<line>` with the common sources.
  */
private[helper] object SparkLine {
  type Session = org.apache.spark.sql.SparkSession
  def active: Session = org.apache.spark.sql.SparkSession.active
  def activeOption: Option[Session] = org.apache.spark.sql.SparkSession.getActiveSession
}
