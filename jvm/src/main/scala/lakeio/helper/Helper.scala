package lakeio.helper

import java.io.{FileNotFoundException, IOException}
import java.util.jar.JarFile

import scala.jdk.CollectionConverters._

import com.fasterxml.jackson.core.JacksonException
import com.fasterxml.jackson.databind.{JsonNode, ObjectMapper}
import com.fasterxml.jackson.databind.node.ObjectNode
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.spark.sql.classic.SparkSession

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

  /** The partition directories of a hive-partitioned table that a read needs.
    *
    * Request: `{"root": "s3a://bucket/table", "columns": ["year", "month"], "predicate": {...} or
    * null, "threads": 16, "sampleSize": 100, "maxCandidates": 64}` (the last three optional); the
    * predicate grammar is [[Predicate.fromJson]]'s. Answer: `{"paths": [...], "types": {"year":
    * "int" or null}, "total": n or null, "schemaPath": path or null, "requests": n, "steps": [...]}`,
    * or `{"error": "not_found" | "layout" | "io" | "request", "message": "..."}`.
    *
    * Paths are read with the active session's Hadoop configuration, as Spark will read them.
    */
  def selectPartitions(request: String): String = answer {
    val conf = SparkSession.getActiveSession.map(_.sessionState.newHadoopConf()).getOrElse(new Configuration())
    selectPartitions(json.readTree(request), conf)
  }

  private[helper] def selectPartitions(request: JsonNode, conf: Configuration): ObjectNode = {
    val root = new Path(field(request, "root").asText)
    val columns = field(request, "columns").elements().asScala.map(_.asText).toSeq
    val defaults = ListingOptions()
    def option(name: String, default: Int) = Option(request.get(name)).filter(!_.isNull).map(_.asInt).getOrElse(default)
    val options = ListingOptions(option("threads", defaults.threads), option("sampleSize", defaults.sampleSize),
                                 option("maxCandidates", defaults.maxCandidates))
    val predicate = Predicate.fromJson(request.get("predicate"))
    val selection = new PartitionLister(root.getFileSystem(conf), root, columns, predicate, options).select()

    val result = json.createObjectNode()
    val paths = result.putArray("paths")
    selection.paths.foreach(p => paths.add(p.toString))
    val types = result.putObject("types")
    selection.types.foreach { case (column, t) => t.sparkName.fold(types.putNull(column))(types.put(column, _)) }
    selection.total.fold(result.putNull("total"))(result.put("total", _))
    selection.schemaPath.fold(result.putNull("schemaPath"))(p => result.put("schemaPath", p.toString))
    result.put("requests", selection.requests)
    val steps = result.putArray("steps")
    selection.steps.foreach(steps.add)
    result
  }

  private val json = new ObjectMapper()

  private def field(request: JsonNode, name: String): JsonNode =
    Option(request.get(name)).filter(!_.isNull).getOrElse(throw new BadRequest(s"request lacks '$name': $request"))

  /** Runs an entry point; expected failures become `{"error": kind, "message": ...}`. */
  private def answer(body: => ObjectNode): String = {
    def error(kind: String, e: Throwable) = {
      val node = json.createObjectNode()
      node.put("error", kind).put("message", Option(e.getMessage).getOrElse(e.getClass.getName))
    }
    val node = try body catch {
      case e @ (_: BadRequest | _: JacksonException) => error("request", e)
      case e: FileNotFoundException => error("not_found", e)
      case e: LayoutError => error("layout", e)
      case e: IOException => error("io", e)
    }
    json.writeValueAsString(node)
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
