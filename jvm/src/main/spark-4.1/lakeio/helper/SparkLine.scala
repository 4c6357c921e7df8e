package lakeio.helper

/** The one thing the helper's sources name differently per Spark line: the session class whose
  * internals (session state, file indexes, relations) the helper uses. Spark 4: `sql.classic.SparkSession`.
  * Build.gradle compiles `jvm/src/main/spark-<line>` with the common sources.
  */
private[helper] object SparkLine {
  type Session = org.apache.spark.sql.classic.SparkSession
  def active: Session = org.apache.spark.sql.classic.SparkSession.active
  def activeOption: Option[Session] = org.apache.spark.sql.classic.SparkSession.getActiveSession
}
