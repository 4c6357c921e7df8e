package lakeio.helper

import java.io.{FileNotFoundException, IOException}
import java.util.jar.JarFile

import scala.jdk.CollectionConverters._
import scala.util.{Try, Using}

import com.fasterxml.jackson.core.JacksonException
import com.fasterxml.jackson.databind.{JsonNode, ObjectMapper}
import com.fasterxml.jackson.databind.node.ObjectNode
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.spark.sql.classic.SparkSession
import org.apache.parquet.hadoop.{Footer, ParquetFileReader}
import org.apache.parquet.hadoop.util.HadoopInputFile
import org.apache.spark.sql.execution.datasources.parquet.{ParquetFileFormat, ParquetToSparkSchemaConverter}

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
    * null, "threads": 16, "sampleSize": 100, "maxCandidates": 64, "dataSchema": false}` (the last
    * four optional); the predicate grammar is [[Predicate.fromJson]]'s. Answer: `{"paths": [...],
    * "types": {"year": "int" or null}, "total": n or null, "schemaPath": path or null, "dataSchema":
    * Spark schema JSON or null, "requests": n, "steps": [...]}`, or `{"error": "not_found" | "layout"
    * | "io" | "request", "message": "..."}`.
    *
    * Paths are read with the active session's Hadoop configuration, as Spark will read them. With
    * "dataSchema" true, the schema of the data files is read from one file's footer the way Spark's
    * schema inference reads it, so the read can skip that inference's Spark job.
    */
  def selectPartitions(request: String): String = answer {
    val session = SparkSession.getActiveSession
    val conf = session.map(_.sessionState.newHadoopConf()).getOrElse(new Configuration())
    val parsed = json.readTree(request)
    val result = selectPartitions(parsed, conf)
    val wanted = Option(parsed.get("dataSchema")).exists(_.asBoolean)
    val sample = Option(result.get("paths").get(0)).orElse(Option(result.get("schemaPath")).filterNot(_.isNull))
    val schema = for (s <- session if wanted; dir <- sample; found <- dataSchema(new Path(dir.asText), conf, s)) yield found
    schema.fold(result.putNull("dataSchema"))(result.put("dataSchema", _))
    json.writeValueAsString(result)
  }

  /** The schema Spark infers for a directory's data files (schema merging off): the first data
    * file's footer, converted by Spark's own Parquet reader; None when there is none to read.
    */
  private def dataSchema(dir: Path, conf: Configuration, session: SparkSession): Option[String] = {
    val fs = dir.getFileSystem(conf)
    fs.listStatus(dir).find(s => s.isFile && !PartitionValues.isHidden(s.getPath.getName)).flatMap { file =>
      // An unreadable footer is left to Spark's own inference, which reports it.
      Try(Using.resource(ParquetFileReader.open(HadoopInputFile.fromStatus(file, conf)))(_.getFooter)).toOption.map {
        footer =>
          val converter = new ParquetToSparkSchemaConverter(session.sessionState.conf)
          ParquetFileFormat.readSchemaFromFooter(new Footer(file.getPath, footer), converter).json
      }
    }
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
  private def answer(body: => String): String = {
    def error(kind: String, e: Throwable) = {
      val node = json.createObjectNode()
      node.put("error", kind).put("message", Option(e.getMessage).getOrElse(e.getClass.getName))
    }
    try body catch {
      case e @ (_: BadRequest | _: JacksonException) => json.writeValueAsString(error("request", e))
      case e: FileNotFoundException => json.writeValueAsString(error("not_found", e))
      case e: LayoutError => json.writeValueAsString(error("layout", e))
      case e: IOException => json.writeValueAsString(error("io", e))
    }
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
