CREATE TABLE `audit_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`request_id` text NOT NULL,
	`principal` text NOT NULL,
	`action` text NOT NULL,
	`route` text NOT NULL,
	`object_ids` text DEFAULT '[]' NOT NULL,
	`detail` text DEFAULT '{}' NOT NULL,
	`status` integer NOT NULL,
	`error_code` text,
	`source_ip` text
);
--> statement-breakpoint
CREATE INDEX `audit_log_at_idx` ON `audit_log` (`at`);--> statement-breakpoint
CREATE INDEX `audit_log_principal_at_idx` ON `audit_log` (`principal`,`at`);--> statement-breakpoint
CREATE INDEX `audit_log_action_at_idx` ON `audit_log` (`action`,`at`);