package lakeio.helper

import java.util.jar.JarFile

/** lakeio's JVM entry points, called from Python through the active SparkSession's py4j gateway.
  *
  * Every entry point takes and returns JSON strings so the Python side needs no py4j object
  * juggling and the contract is testable on both sides.
  */
object Helper {

  /** {"helper": "<lakeio version>", "spark": "<Spark version compiled against>"}, from this jar's
    * manifest, which the Gradle build writes from pyproject.toml and pyspark's own jars.
    */
  def version(): String = {
    val (helper, spark) = manifestVersions()
    s"""{"helper": "${escape(helper)}", "spark": "${escape(spark)}"}"""
  }

  private def manifestVersions(): (String, String) = {
    val location = getClass.getProtectionDomain.getCodeSource.getLocation
    val path = java.nio.file.Paths.get(location.toURI).toString
    if (!path.endsWith(".jar")) ("unpackaged", "unknown")
    else {
      val jar = new JarFile(path)
      try {
        val attributes = jar.getManifest.getMainAttributes
        (Option(attributes.getValue("Implementation-Version")).getOrElse("unknown"),
         Option(attributes.getValue("Spark-Version")).getOrElse("unknown"))
      } finally jar.close()
    }
  }

  private def escape(s: String): String = s.replace("\\", "\\\\").replace("\"", "\\\"")
}
