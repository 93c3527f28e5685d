/*
 * srv_api.c - which AWS operations `sluice serve` answers.
 */
#include "server/srv_api.h"
#include "server/srv_schedules.h"

sl_err
srv_api_register_all(srv_t *s)
{
	sl_err rc = srv_api_machines_register(s);
	if (rc == SL_OK)
		rc = srv_api_events_register(s);
	if (rc == SL_OK)
		rc = srv_api_bus_register(s);
	if (rc == SL_OK)
		rc = srv_api_schedules_register(s);
	if (rc == SL_OK)
		rc = srv_api_executions_register(s);
	if (rc == SL_OK)
		rc = srv_api_activities_register(s);
	if (rc == SL_OK)
		rc = srv_api_mapruns_register(s);
	return rc;
}
