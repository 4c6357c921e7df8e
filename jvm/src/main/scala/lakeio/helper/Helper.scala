package lakeio.helper

import java.io.{FileNotFoundException, IOException}
import java.time.LocalDate
import java.util.jar.JarFile

import scala.jdk.CollectionConverters._
import scala.util.{Try, Using}

import com.fasterxml.jackson.core.JacksonException
import com.fasterxml.jackson.databind.{JsonNode, ObjectMapper}
import com.fasterxml.jackson.databind.node.ObjectNode
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileStatus, Path}
import org.apache.parquet.hadoop.{Footer, ParquetFileReader}
import org.apache.parquet.hadoop.util.HadoopInputFile
import org.apache.spark.sql.{Dataset, Row}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.execution.datasources.{FileStatusCache, HadoopFsRelation, InMemoryFileIndex, PartitionPath, PartitionSpec}
import org.apache.spark.sql.execution.datasources.parquet.{ParquetFileFormat, ParquetToSparkSchemaConverter}
import org.apache.spark.sql.types.{BooleanType, DataType, DateType, Decimal, DecimalType, DoubleType, IntegerType, LongType, StringType,
  StructType, TimestampNTZType, TimestampType}
import org.apache.spark.unsafe.types.UTF8String

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
  def selectPartitions(request: String): String = selectPartitionsIn(SparkLine.activeOption, request)

  /** [[selectPartitions]] in the given session (the Spark Connect plugin's, whose thread may have no
    * active session).
    */
  def selectPartitionsIn(session: Option[SparkLine.Session], request: String): String = answer {
    val conf = session.map(_.sessionState.newHadoopConf()).getOrElse(new Configuration())
    val parsed = json.readTree(request)
    val (result, selection) = selectPartitions(parsed, conf)
    val wanted = Option(parsed.get("dataSchema")).exists(_.asBoolean)
    val schema = for (s <- session if wanted; file <- firstFile(selection, conf); found <- dataSchema(file, conf, s)) yield found
    schema.fold(result.putNull("dataSchema"))(result.put("dataSchema", _))
    json.writeValueAsString(result)
  }

  /** The data file Spark's schema inference would read: the first of the selection's files (listed
    * already when files were asked for), else of its first partition or the one named for the schema.
    */
  private def firstFile(selection: Selection, conf: Configuration): Option[FileStatus] =
    selection.partitions.iterator.flatMap(_.files.getOrElse(Nil)).take(1).toList.headOption.orElse {
      selection.paths.headOption.orElse(selection.schemaPath).flatMap { dir =>
        dir.getFileSystem(conf).listStatus(dir).find(PartitionValues.isDataFile)
      }
    }

  /** The schema Spark infers for a data file's directory (schema merging off): the file's footer,
    * converted by Spark's own Parquet reader; None when it cannot be read.
    */
  private def dataSchema(file: FileStatus, conf: Configuration, session: SparkLine.Session): Option[String] =
    // An unreadable footer is left to Spark's own inference, which reports it.
    Try(Using.resource(ParquetFileReader.open(HadoopInputFile.fromStatus(file, conf)))(_.getFooter)).toOption.map {
      footer =>
        val converter = new ParquetToSparkSchemaConverter(session.sessionState.conf)
        ParquetFileFormat.readSchemaFromFooter(new Footer(file.getPath, footer), converter).json
    }

  private[helper] def selectPartitions(request: JsonNode, conf: Configuration): (ObjectNode, Selection) = {
    val root = new Path(field(request, "root").asText)
    val columns = field(request, "columns").elements().asScala.map(_.asText).toSeq
    val defaults = ListingOptions()
    def option(name: String, default: Int) = Option(request.get(name)).filter(!_.isNull).map(_.asInt).getOrElse(default)
    val options = ListingOptions(option("threads", defaults.threads), option("sampleSize", defaults.sampleSize),
                                 option("maxCandidates", defaults.maxCandidates))
    val predicate = Predicate.fromJson(request.get("predicate"))
    val withFiles = Option(request.get("files")).exists(_.asBoolean)
    val selection = new PartitionLister(root.getFileSystem(conf), root, columns, predicate, options).select(withFiles)

    val result = json.createObjectNode()
    val paths = result.putArray("paths")
    selection.paths.foreach(p => paths.add(p.toString))
    if (withFiles) {
      val partitions = result.putArray("partitions")
      for (partition <- selection.partitions) {
        val node = partitions.addObject().put("path", partition.path.toString)
        val values = node.putObject("values")
        for (column <- columns) typedValue(values, column, partition.values(column), selection.types(column))
        val files = node.putArray("files")
        for (file <- partition.files.getOrElse(Nil))
          files.addObject().put("path", file.getPath.toString).put("size", file.getLen).put("modified", file.getModificationTime)
      }
    }
    val types = result.putObject("types")
    selection.types.foreach { case (column, t) => t.sparkName.fold(types.putNull(column))(types.put(column, _)) }
    selection.total.fold(result.putNull("total"))(result.put("total", _))
    selection.schemaPath.fold(result.putNull("schemaPath"))(p => result.put("schemaPath", p.toString))
    result.put("requests", selection.requests)
    val steps = result.putArray("steps")
    selection.steps.foreach(steps.add)
    (result, selection)
  }

  /** A Spark DataFrame of partitions already listed, so Spark lists nothing again.
    *
    * Request: `{"root": ..., "schema": Spark schema JSON of the data and partition columns,
    * "partitionColumns": [...], "partitions": [...]}`, the partitions as [[selectPartitions]] answers
    * them with "files" (every partition column typed int, bigint, date or string). The frame is the
    * same relation `spark.read.option("basePath", root).schema(schema).parquet(dirs)` builds, with its
    * file index given these files and these typed partitions instead of listing the directories and
    * inferring them; refreshing it keeps them.
    */
  def prelistedFrame(request: String): Dataset[Row] = prelistedFrameIn(SparkLine.active, request)

  /** [[prelistedFrame]] in the given session (the Spark Connect plugin's). */
  def prelistedFrameIn(session: SparkLine.Session, request: String): Dataset[Row] = {
    val parsed = json.readTree(request)
    val root = field(parsed, "root").asText
    val schema = DataType.fromJson(field(parsed, "schema").toString).asInstanceOf[StructType]
    val partitionColumns = field(parsed, "partitionColumns").elements().asScala.map(_.asText).toSeq
    val partitionSchema = StructType(partitionColumns.map(schema(_)))
    val dataSchema = StructType(schema.filterNot(f => partitionColumns.contains(f.name)))
    val partitions = field(parsed, "partitions").elements().asScala.map { node =>
      val values = partitionSchema.map(f => internalValue(node.get("values").get(f.name), f.dataType))
      val files = node.get("files").elements().asScala.map { file =>
        new FileStatus(file.get("size").asLong, false, 1, 0L, file.get("modified").asLong, new Path(file.get("path").asText))
      }.toArray
      PartitionPath(InternalRow.fromSeq(values), new Path(node.get("path").asText)) -> files
    }.toSeq
    val listed = partitions.map { case (partition, files) => partition.path -> files }.toMap
    val cache = new FileStatusCache {
      override def getLeafFiles(path: Path): Option[Array[FileStatus]] = listed.get(path)
      override def putLeafFiles(path: Path, leafFiles: Array[FileStatus]): Unit = ()
      override def invalidateAll(): Unit = ()
    }
    val options = Map("basePath" -> root)
    val index = new InMemoryFileIndex(session, partitions.map(_._1.path), options, Some(schema), cache,
                                      Some(PartitionSpec(partitionSchema, partitions.map(_._1))), None)
    session.baseRelationToDataFrame(
      HadoopFsRelation(index, partitionSchema, dataSchema, None, new ParquetFileFormat(), options)(session))
  }

  /** Puts a partition's raw value as its column's type: JSON numbers for integers, ISO dates, text. */
  private def typedValue(values: ObjectNode, column: String, raw: Option[String], columnType: ColumnType): Unit =
    (raw, columnType) match {
      case (None, _) => values.putNull(column)
      case (Some(v), ColumnType.IntType) => values.put(column, Integer.parseInt(v))
      case (Some(v), ColumnType.LongType) => values.put(column, java.lang.Long.parseLong(v))
      case (Some(v), ColumnType.DateType) => values.put(column, LocalDate.parse(v).toString)
      case (Some(v), _) => values.put(column, v)
    }

  /** A typed partition value as Spark holds it in a row: decimals and doubles come as their text
    * (exact, and `NaN`/`Infinity` are no JSON numbers), timestamps as microseconds since the epoch.
    */
  private def internalValue(node: JsonNode, dataType: DataType): Any =
    if (node == null || node.isNull) null
    else dataType match {
      case IntegerType => node.asInt
      case LongType => node.asLong
      case DateType => LocalDate.parse(node.asText).toEpochDay.toInt
      case StringType => UTF8String.fromString(node.asText)
      case BooleanType => node.asBoolean
      case DoubleType => java.lang.Double.parseDouble(node.asText)
      case decimal: DecimalType => Decimal(new java.math.BigDecimal(node.asText), decimal.precision, decimal.scale)
      case TimestampType | TimestampNTZType => node.asLong
      case other => throw new BadRequest(s"partition columns of type $other are not prelisted")
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
