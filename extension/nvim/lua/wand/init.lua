--- Wand for Neovim: starts `wand-lsp` for Mage projects and adds :WandDag / :WandRun / :WandRunBlock.
---
---   require('wand').setup({
---     cmd = { 'wand-lsp' },      -- language server command (default: wand-lsp on PATH)
---     cli = 'wand',              -- the wand CLI for :WandDag and :WandRun
---     filetypes = { 'yaml', 'python', 'sql' },
---   })
local M = {}

local uv = vim.uv or vim.loop

M.defaults = {
  name = 'wand',
  cmd = { 'wand-lsp' },
  cli = 'wand',
  filetypes = { 'yaml', 'python', 'sql' },
  settings = {},
}

M.config = vim.deepcopy(M.defaults)

local function exists(path)
  return uv.fs_stat(path) ~= nil
end

local function is_dir(path)
  local stat = uv.fs_stat(path)
  return stat ~= nil and stat.type == 'directory'
end

--- True when `dir/pipelines/*/metadata.yaml` exists.
local function has_pipelines(dir)
  local pipelines = dir .. '/pipelines'
  if not is_dir(pipelines) then
    return false
  end
  for name, kind in vim.fs.dir(pipelines) do
    if kind == 'directory' and exists(pipelines .. '/' .. name .. '/metadata.yaml') then
      return true
    end
  end
  return false
end

--- A Mage project root: `metadata.yaml` plus `io_config.yaml`, or a `pipelines/` folder holding
--- `*/metadata.yaml`. (A pipeline's own folder has `metadata.yaml` but neither of the others.)
function M.is_project_root(dir)
  return exists(dir .. '/metadata.yaml') and (exists(dir .. '/io_config.yaml') or has_pipelines(dir))
end

--- The Mage project that holds `path` (a file or folder), or nil.
function M.root_dir(path)
  if path == nil or path == '' then
    return nil
  end
  path = vim.fs.normalize(vim.fn.fnamemodify(path, ':p'))
  local start = is_dir(path) and path or vim.fs.dirname(path)
  if M.is_project_root(start) then
    return start
  end
  for dir in vim.fs.parents(start) do
    if M.is_project_root(dir) then
      return dir
    end
  end
  return nil
end

--- `{ project, pipeline }` from a path `<project>/pipelines/<pipeline>/...`, or nil.
function M.pipeline_of_path(path)
  path = vim.fs.normalize(vim.fn.fnamemodify(path, ':p'))
  local project, pipeline = path:match('^(.*)/pipelines/([^/]+)/[^/]+$')
  if project and exists(project .. '/pipelines/' .. pipeline .. '/metadata.yaml') then
    return { project = project, pipeline = pipeline }
  end
  return nil
end

--- The `vim.lsp.start` config for a buffer, or nil when it is not in a Mage project.
function M.lsp_config(bufnr)
  local root = M.root_dir(vim.api.nvim_buf_get_name(bufnr))
  if not root then
    return nil
  end
  return {
    name = M.config.name,
    cmd = M.config.cmd,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fs.basename(root) } },
    settings = M.config.settings,
  }
end

--- Starts (or reuses) the server for a buffer of a Mage project. Returns the client id or nil.
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  local config = M.lsp_config(bufnr)
  if not config then
    return nil
  end
  if vim.fn.executable(config.cmd[1]) ~= 1 then
    if not M._warned then
      M._warned = true
      vim.notify(('wand: `%s` not found; install it with `cargo install --path lsp` from a Wand checkout, or pass `cmd` to setup()'):format(config.cmd[1]), vim.log.levels.ERROR)
    end
    return nil
  end
  return vim.lsp.start(config, { bufnr = bufnr })
end

local function client_for(bufnr)
  local clients = (vim.lsp.get_clients or vim.lsp.get_active_clients)({ name = M.config.name, bufnr = bufnr })
  return clients[1]
end

--- Asks the server which pipeline the current file belongs to (`wand/dag` with the file's uri).
local function dag_of_buffer(bufnr)
  local client = client_for(bufnr)
  if not client then
    return nil
  end
  local params = { uri = vim.uri_from_bufnr(bufnr) }
  local response
  if vim.fn.has('nvim-0.11') == 1 then
    response = client:request_sync('wand/dag', params, 5000, bufnr)
  else
    response = client.request_sync('wand/dag', params, 5000, bufnr)
  end
  return response and response.result or nil
end

local function pipelines_of(root)
  local out = {}
  if is_dir(root .. '/pipelines') then
    for name, kind in vim.fs.dir(root .. '/pipelines') do
      if kind == 'directory' and exists(root .. '/pipelines/' .. name .. '/metadata.yaml') then
        table.insert(out, name)
      end
    end
  end
  table.sort(out)
  return out
end

--- Resolves `{ project, pipeline }` for a command: the argument, the path, the server, then a pick.
local function with_pipeline(arg, callback)
  local bufnr = vim.api.nvim_get_current_buf()
  local file = vim.api.nvim_buf_get_name(bufnr)
  local root = M.root_dir(file ~= '' and file or uv.cwd())
  if not root then
    vim.notify('wand: not inside a Mage project', vim.log.levels.ERROR)
    return
  end
  if arg and arg ~= '' then
    return callback({ project = root, pipeline = arg })
  end
  local from_path = file ~= '' and M.pipeline_of_path(file) or nil
  if from_path then
    return callback(from_path)
  end
  local dag = dag_of_buffer(bufnr)
  if dag and dag.pipeline then
    return callback({ project = root, pipeline = dag.pipeline, dag = dag })
  end
  local names = pipelines_of(root)
  if #names == 1 then
    return callback({ project = root, pipeline = names[1] })
  end
  vim.ui.select(names, { prompt = 'Pipeline: ' }, function(choice)
    if choice then
      callback({ project = root, pipeline = choice })
    end
  end)
end

--- The command lines, exposed for tests.
function M.dag_cmd(project, pipeline)
  return { M.config.cli, 'dag', pipeline, '--project', project, '--format', 'mermaid' }
end

function M.run_cmd(project, pipeline, block)
  local cmd = { M.config.cli, 'run', project, pipeline }
  if block then
    vim.list_extend(cmd, { '--block', block })
  end
  return cmd
end

--- :WandDag [pipeline]: `wand dag --format mermaid` into a scratch buffer.
function M.dag(arg)
  with_pipeline(arg, function(ref)
    local cmd = M.dag_cmd(ref.project, ref.pipeline)
    local result = vim.system(cmd, { text = true, cwd = ref.project }):wait()
    if result.code ~= 0 then
      vim.notify(('wand dag failed (%d): %s'):format(result.code, vim.trim(result.stderr or '')), vim.log.levels.ERROR)
      return
    end
    local name = 'wand://dag/' .. ref.pipeline
    local existing = vim.fn.bufnr(name)
    local buf = existing ~= -1 and existing or vim.api.nvim_create_buf(true, true)
    if existing == -1 then
      vim.api.nvim_buf_set_name(buf, name)
    end
    vim.bo[buf].buftype = 'nofile'
    vim.bo[buf].bufhidden = 'hide'
    vim.bo[buf].swapfile = false
    vim.bo[buf].modifiable = true
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(vim.trim(result.stdout), '\n'))
    vim.bo[buf].modifiable = false
    vim.bo[buf].filetype = 'mermaid'
    if vim.fn.bufwinid(buf) == -1 then
      vim.cmd('botright split')
      vim.api.nvim_win_set_buf(0, buf)
    end
  end)
end

local function in_terminal(cmd, cwd)
  vim.cmd('botright new')
  if vim.fn.has('nvim-0.11') == 1 then
    vim.fn.jobstart(cmd, { term = true, cwd = cwd })
  else
    vim.fn.termopen(cmd, { cwd = cwd })
  end
  vim.cmd('startinsert')
end

--- :WandRun [pipeline]: `wand run <project> <pipeline>` in a terminal split.
function M.run(arg)
  with_pipeline(arg, function(ref)
    in_terminal(M.run_cmd(ref.project, ref.pipeline), ref.project)
  end)
end

--- :WandRunBlock [block]: runs the block of the current file (or the named one) with its upstream.
function M.run_block(arg)
  local bufnr = vim.api.nvim_get_current_buf()
  local file = vim.api.nvim_buf_get_name(bufnr)
  local dag = dag_of_buffer(bufnr)
  local root = M.root_dir(file)
  if not (dag and root) then
    vim.notify('wand: the server does not know this file (is wand-lsp attached?)', vim.log.levels.ERROR)
    return
  end
  local block = arg ~= '' and arg or nil
  if not block then
    local uri = vim.uri_from_bufnr(bufnr)
    for _, node in ipairs(dag.nodes or {}) do
      if node.file == uri then
        block = node.uuid
      end
    end
  end
  local function go(uuid)
    in_terminal(M.run_cmd(root, dag.pipeline, uuid), root)
  end
  if block then
    return go(block)
  end
  local uuids = vim.tbl_map(function(node)
    return node.uuid
  end, dag.nodes or {})
  vim.ui.select(uuids, { prompt = 'Block: ' }, function(choice)
    if choice then
      go(choice)
    end
  end)
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  if type(M.config.cmd) == 'string' then
    M.config.cmd = { M.config.cmd }
  end
  local group = vim.api.nvim_create_augroup('wand', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = M.config.filetypes,
    callback = function(event)
      M.attach(event.buf)
    end,
  })
  vim.api.nvim_create_user_command('WandDag', function(command)
    M.dag(command.args)
  end, { nargs = '?', desc = 'wand dag: the pipeline as Mermaid in a scratch buffer' })
  vim.api.nvim_create_user_command('WandRun', function(command)
    M.run(command.args)
  end, { nargs = '?', desc = 'wand run: run the pipeline in a terminal' })
  vim.api.nvim_create_user_command('WandRunBlock', function(command)
    M.run_block(command.args)
  end, { nargs = '?', desc = 'wand run --block: run a block with its upstream blocks' })
  -- Buffers already open when setup() runs.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
      M.attach(bufnr)
    end
  end
end

return M
