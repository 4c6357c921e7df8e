package lakeio.helper

import java.util.Optional

import com.fasterxml.jackson.databind.ObjectMapper
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan
import org.apache.spark.sql.connect.planner.SparkConnectPlanner
import org.apache.spark.sql.connect.plugin.RelationPlugin
import org.apache.spark.sql.functions.lit
import org.sparkproject.connect.protobuf.{Any, StringValue}

/** The helper as a Spark Connect relation plugin (`spark.connect.extensions.relation.classes`), so a
  * Connect client reaches the same entry points the py4j door calls, with the same JSON.
  *
  * The client sends an extension relation whose `Any` has the type URL [[ConnectPlugin.TypeUrl]] and
  * a `StringValue`-shaped body: `{"entry": "version" | "selectPartitions" | "prelistedFrame",
  * "payload": {...}}`. `version` and `selectPartitions` answer a one-row relation with the answer's
  * JSON in column `json`; `prelistedFrame` answers the frame itself. Other relations are not ours.
  */
class ConnectPlugin extends RelationPlugin {
  override def transform(relation: Array[Byte], planner: SparkConnectPlanner): Optional[LogicalPlan] = {
    val any = Any.parseFrom(relation)
    if (any.getTypeUrl != ConnectPlugin.TypeUrl) Optional.empty()
    else {
      val request = ConnectPlugin.json.readTree(StringValue.parseFrom(any.getValue).getValue)
      val session = planner.session
      val payload = Option(request.get("payload")).filter(!_.isNull).map(_.toString)
      def answer(text: String): LogicalPlan = session.range(1).select(lit(text).as("json")).queryExecution.logical
      Option(request.get("entry")).map(_.asText) match {
        case Some("version") => Optional.of(answer(Helper.version()))
        case Some("selectPartitions") => Optional.of(answer(Helper.selectPartitionsIn(Some(session), payload.getOrElse("{}"))))
        case Some("prelistedFrame") => Optional.of(Helper.prelistedFrameIn(session, payload.getOrElse("{}")).queryExecution.logical)
        case other => throw new IllegalArgumentException(s"lakeio's Connect plugin has no entry point $other")
      }
    }
  }
}

object ConnectPlugin {
  /** The type URL of lakeio's requests; the Python client sends the same. */
  val TypeUrl = "type.googleapis.com/lakeio.helper.Request"
  private val json = new ObjectMapper()
}
