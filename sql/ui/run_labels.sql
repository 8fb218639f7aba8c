-- run_labels: task, ticket and launch of every agent run seen since a time
-- Parameters:
--   {database:Identifier}  the receiver's database (default otel)
--   {since:DateTime64(9)}  runs last seen at or after this time (default 7d)
-- Columns: run_id, kind, task_id, ticket_id, launch_id, parent_run_id, resolution.
-- Source: agent_runs (a run without its own task/ticket already carries its launch's).
SELECT RunId AS run_id, Kind AS kind, TaskId AS task_id, TicketId AS ticket_id,
       LaunchId AS launch_id, ParentRunId AS parent_run_id, Resolution AS resolution
FROM {database:Identifier}.agent_runs FINAL
WHERE LastSeen >= {since:DateTime64(9)}
